//! `[engine] cluster = { url = "postgres://…", password = "${…}", host_id = "${HOSTNAME}",
//! lease_seconds = 15 }`: several `weir serve` hosts sharing one PostgreSQL database for their
//! event log, run records and leases (docs/cluster.md). Without it weir runs alone, as before.

use std::ops::Range;
use std::time::Duration;

use super::Reader;
use super::raw::RawCluster;

/// How long a lease lasts without renewal when `lease_seconds` is not given.
const DEFAULT_LEASE: Duration = Duration::from_secs(15);

/// The bounds of `lease_seconds`: below one second a heartbeat (every third of it) would race
/// a busy database; above an hour a dead host would hold its pipelines for too long.
const LEASE_RANGE: (f64, f64) = (1.0, 3600.0);

/// `engine.cluster`, checked.
#[derive(Clone)]
pub struct ClusterConfig {
    /// `postgres://user@host:port/database` (interpolated).
    pub url: String,
    /// Interpolated; never shown.
    pub password: Option<String>,
    /// This host's name in the cluster: unique per running `weir serve`.
    pub host_id: String,
    pub lease: Duration,
}

impl std::fmt::Debug for ClusterConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterConfig")
            .field("url", &"…")
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("host_id", &self.host_id)
            .field("lease", &self.lease)
            .finish()
    }
}

/// A host id as the registry, the logs and `weir cluster status` show it.
fn valid_host_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 63
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// Whether the URL's authority carries `user:password@`.
fn url_has_password(url: &str) -> bool {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?']).next().unwrap_or("");
    authority
        .rsplit_once('@')
        .is_some_and(|(userinfo, _)| userinfo.contains(':'))
}

impl Reader<'_> {
    pub(super) fn cluster(
        &mut self,
        raw: &RawCluster,
        span: &Range<usize>,
    ) -> Option<ClusterConfig> {
        let url = self.interpolate(raw.url.get_ref(), &raw.url.span());
        let password = match &raw.password {
            None => Some(None),
            Some(p) => self.interpolate(p.get_ref(), &p.span()).map(Some),
        };
        let host_id = match &raw.host_id {
            Some(h) => self.interpolate(h.get_ref(), &h.span()),
            None => {
                self.problem(
                    span,
                    "engine.cluster.host_id is missing: give each `weir serve` of the cluster its \
                     own name, e.g. host_id = \"${HOSTNAME}\""
                        .into(),
                );
                None
            }
        };
        let lease = match raw.lease_seconds {
            None => DEFAULT_LEASE,
            Some(s) if (LEASE_RANGE.0..=LEASE_RANGE.1).contains(&s) => Duration::from_secs_f64(s),
            Some(s) => {
                self.problem(
                    span,
                    format!(
                        "engine.cluster.lease_seconds = {s} is out of range: give {} to {} \
                         seconds (a dead host's work moves to another after this long)",
                        LEASE_RANGE.0, LEASE_RANGE.1
                    ),
                );
                DEFAULT_LEASE
            }
        };
        let (url, password, host_id) = (url?, password?, host_id?);
        let mut ok = true;
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            self.problem(
                &raw.url.span(),
                "engine.cluster.url must be a PostgreSQL URL: postgres://user@host:port/database"
                    .into(),
            );
            ok = false;
        } else if password.is_some() && url_has_password(&url) {
            self.problem(
                &raw.url.span(),
                "engine.cluster.url carries a password and engine.cluster.password is set too: \
                 give it once, in password (e.g. password = \"${WEIR_CLUSTER_PASSWORD}\")"
                    .into(),
            );
            ok = false;
        }
        if !valid_host_id(&host_id) {
            let at = raw.host_id.as_ref().map_or(span.clone(), |h| h.span());
            self.problem(
                &at,
                format!(
                    "engine.cluster.host_id = \"{host_id}\" is not a host id: use 1 to 63 \
                     letters, digits, '-', '_' or '.'"
                ),
            );
            ok = false;
        }
        ok.then_some(ClusterConfig {
            url,
            password,
            host_id,
            lease,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::Config;
    use std::path::Path;

    const PIPELINE: &str = r#"
[[pipeline]]
name = "bank"
grants = { read_dirs = ["inbox"], databases = { ledger = "books.db" } }
extract = { plugin = "csv-extract", config = { path = "inbox/*.csv" } }
load = [{ plugin = "sqlite-load", config = { database = "ledger", table = "t" } }]
history = { plugin = "sqlite-history", config = { database = "ledger" } }
"#;

    fn parse(engine: &str) -> Result<Config, String> {
        let text = format!("[engine]\n{engine}\n{PIPELINE}");
        let env = |name: &str| match name {
            "PGPW" => Some("s3cret".to_owned()),
            "HOST" => Some("node-1".to_owned()),
            _ => None,
        };
        Config::parse(Path::new("/etc/weir/weir.toml"), &text, &env).map_err(|e| e.to_string())
    }

    #[test]
    fn without_cluster_weir_runs_alone() {
        assert!(parse("").unwrap().engine.cluster.is_none());
    }

    #[test]
    fn a_cluster_is_read_with_its_secrets_interpolated_and_kept_out_of_debug() {
        let config = parse(
            r#"cluster = { url = "postgres://weir@db.internal:5432/weir", password = "${PGPW}", host_id = "${HOST}", lease_seconds = 2.5 }"#,
        )
        .unwrap();
        let cluster = config.engine.cluster.unwrap();
        assert_eq!(cluster.url, "postgres://weir@db.internal:5432/weir");
        assert_eq!(cluster.password.as_deref(), Some("s3cret"));
        assert_eq!(cluster.host_id, "node-1");
        assert_eq!(cluster.lease, std::time::Duration::from_millis(2500));
        assert!(!format!("{cluster:?}").contains("s3cret"));

        let default = parse(r#"cluster = { url = "postgresql://db/weir", host_id = "a" }"#)
            .unwrap()
            .engine
            .cluster
            .unwrap();
        assert_eq!(default.lease, std::time::Duration::from_secs(15));
        assert_eq!(default.password, None);
    }

    #[test]
    fn each_cluster_mistake_is_named_with_its_line() {
        let cases = [
            (
                r#"cluster = { url = "mysql://db/weir", host_id = "a" }"#,
                "engine.cluster.url must be a PostgreSQL URL",
            ),
            (
                r#"cluster = { url = "postgres://db/weir" }"#,
                "engine.cluster.host_id is missing",
            ),
            (
                r#"cluster = { url = "postgres://db/weir", host_id = "a b" }"#,
                "engine.cluster.host_id = \"a b\" is not a host id",
            ),
            (
                r#"cluster = { url = "postgres://db/weir", host_id = "a", lease_seconds = 0.2 }"#,
                "engine.cluster.lease_seconds = 0.2 is out of range",
            ),
            (
                r#"cluster = { url = "postgres://db/weir", host_id = "${NOPE}" }"#,
                "NOPE is not set",
            ),
            (
                r#"cluster = { url = "postgres://weir:pw@db/weir", password = "${PGPW}", host_id = "a" }"#,
                "carries a password and engine.cluster.password is set too",
            ),
            (
                r#"cluster = { url = "postgres://db/weir", host_id = "a", lease = 3 }"#,
                "unknown field `lease`",
            ),
        ];
        for (engine, expected) in cases {
            let e = parse(engine).unwrap_err();
            assert!(e.contains(expected), "{engine}: {e}");
            assert!(e.contains("/etc/weir/weir.toml:2:"), "{engine}: {e}");
            assert!(!e.contains("s3cret") && !e.contains(":pw@"), "{e}");
        }
    }
}
