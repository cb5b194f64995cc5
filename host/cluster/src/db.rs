//! The connection to the cluster database: made from the options, kept while it works, and
//! dropped (to be made again on next use) after a failure or a deadline, so a restarted server
//! or a half-open TCP connection costs one failed operation, not a stuck host.

use std::str::FromStr as _;
use std::time::Duration;

use tokio::sync::{Mutex, MutexGuard};
use tokio_postgres::{Client, Config, NoTls};

use crate::{ClusterError, ClusterOptions};

/// How long connecting may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// `url` with any password replaced by `***` (for messages and logs).
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        // The `key=value` form.
        return url
            .split_whitespace()
            .map(|part| match part.split_once('=') {
                Some((key, _)) if key.eq_ignore_ascii_case("password") => "password=***".into(),
                _ => part.to_owned(),
            })
            .collect::<Vec<_>>()
            .join(" ");
    };
    let (authority, tail) = match rest.find(['/', '?']) {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let authority = match authority.rsplit_once('@') {
        Some((user_info, host)) => match user_info.split_once(':') {
            Some((user, _)) => format!("{user}:***@{host}"),
            None => format!("{user_info}@{host}"),
        },
        None => authority.to_owned(),
    };
    // A `password=` query parameter is a secret too.
    let tail = tail
        .split('&')
        .map(|part| match part.split_once("password=") {
            Some((before, _)) => format!("{before}password=***"),
            None => part.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("&");
    format!("{scheme}://{authority}{tail}")
}

/// Connections to the cluster database.
pub(crate) struct Db {
    /// The URL without its password, for every message.
    pub(crate) shown: String,
    config: Config,
    /// Longest an operation may take before its connection is given up.
    pub(crate) deadline: Duration,
    /// The cluster's lease (sessions' idle limit follows it).
    lease: Duration,
    shared: Mutex<Option<Client>>,
}

impl Db {
    pub(crate) fn new(options: &ClusterOptions) -> Result<Self, ClusterError> {
        let shown = redact_url(&options.url);
        let mut config = Config::from_str(&options.url).map_err(|e| ClusterError::Connect {
            url: shown.clone(),
            reason: format!("not a PostgreSQL URL: {e}"),
        })?;
        if let Some(password) = &options.password {
            config.password(password);
        }
        // A third of the lease: an operation slower than that would let leases lapse anyway.
        let deadline = (options.lease / 3).max(Duration::from_millis(500));
        config
            .application_name("weir-cluster")
            .connect_timeout(CONNECT_TIMEOUT)
            .keepalives(true)
            .keepalives_idle(Duration::from_secs(10))
            .options(session_options(deadline, options.lease));
        Ok(Self {
            lease: options.lease,
            shown,
            config,
            deadline,
            shared: Mutex::new(None),
        })
    }

    /// Another handle on the same database with its own shared connection (the event writer
    /// and the API's reads must not queue behind the heartbeat, nor it behind them).
    /// `deadline`: how long its operations may take.
    pub(crate) fn sibling(&self, deadline: Duration) -> Self {
        let mut config = self.config.clone();
        config.options(session_options(deadline, self.lease));
        Self {
            lease: self.lease,
            shown: self.shown.clone(),
            config,
            deadline,
            shared: Mutex::new(None),
        }
    }

    /// A new connection of its own (the event writer and the change feed keep one each).
    pub(crate) async fn connect(&self) -> Result<Client, ClusterError> {
        let (client, connection) =
            tokio::time::timeout(CONNECT_TIMEOUT, self.config.connect(NoTls))
                .await
                .map_err(|_| self.connect_error("timed out"))?
                .map_err(|e| self.connect_error(&explain(&e)))?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!("cluster database connection ended: {e}");
            }
        });
        Ok(client)
    }

    /// The same, with the connection task handed back (to read notifications).
    pub(crate) async fn connect_raw(
        &self,
    ) -> Result<
        (
            Client,
            tokio_postgres::Connection<tokio_postgres::Socket, tokio_postgres::tls::NoTlsStream>,
        ),
        ClusterError,
    > {
        tokio::time::timeout(CONNECT_TIMEOUT, self.config.connect(NoTls))
            .await
            .map_err(|_| self.connect_error("timed out"))?
            .map_err(|e| self.connect_error(&explain(&e)))
    }

    fn connect_error(&self, reason: &str) -> ClusterError {
        ClusterError::Connect {
            url: self.shown.clone(),
            reason: reason.to_owned(),
        }
    }

    /// The shared connection (made now if there is none), held until the guard is dropped:
    /// the host's coordination statements run one at a time on it.
    pub(crate) async fn conn(&self) -> Result<Conn<'_>, ClusterError> {
        let mut guard = self.shared.lock().await;
        if guard.as_ref().is_none_or(Client::is_closed) {
            *guard = Some(self.connect().await?);
        }
        Ok(Conn { guard, db: self })
    }

    /// A statement's failure as a [`ClusterError`].
    pub(crate) fn query_error(&self, context: &str, e: &tokio_postgres::Error) -> ClusterError {
        ClusterError::Query {
            url: self.shown.clone(),
            context: context.to_owned(),
            reason: explain(e),
        }
    }
}

/// Every session's limits. The server stops a statement that waits past `deadline` (a lock
/// held by a stuck session) rather than leave this host waiting; and it ends a session left
/// idle inside a transaction for a third of the lease (at least a second): a host paused
/// mid-transaction (SIGSTOP, a frozen VM) would otherwise hold its row locks — the event
/// counter's among them — and stall every other host until it wakes. Its own transaction then
/// fails when it wakes, and is retried.
fn session_options(deadline: Duration, lease: Duration) -> String {
    let idle = (lease / 3).max(Duration::from_secs(1));
    format!(
        "-c statement_timeout={} -c idle_in_transaction_session_timeout={}",
        deadline.as_millis(),
        idle.as_millis()
    )
}

/// The shared connection, held.
pub(crate) struct Conn<'a> {
    guard: MutexGuard<'a, Option<Client>>,
    db: &'a Db,
}

impl Conn<'_> {
    pub(crate) fn client(&mut self) -> &mut Client {
        self.guard.as_mut().expect("connected in Db::conn")
    }

    /// Run `work` on the connection within the deadline. After a failure the connection is
    /// dropped (the next operation makes a new one): after a timeout its state is unknown,
    /// and a server that restarted has closed it anyway.
    pub(crate) async fn run<T>(
        mut self,
        context: &str,
        work: impl AsyncFnOnce(&mut Client) -> Result<T, tokio_postgres::Error>,
    ) -> Result<T, ClusterError> {
        let deadline = self.db.deadline;
        match tokio::time::timeout(deadline, work(self.client())).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => {
                if e.is_closed() || e.code().is_none() {
                    *self.guard = None;
                }
                Err(self.db.query_error(context, &e))
            }
            Err(_) => {
                *self.guard = None;
                Err(ClusterError::Query {
                    url: self.db.shown.clone(),
                    context: context.to_owned(),
                    reason: format!("no answer within {} ms", deadline.as_millis()),
                })
            }
        }
    }
}

/// A driver error in words: the server's message (with its detail) when it sent one.
pub(crate) fn explain(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => match db.detail() {
            Some(detail) => format!("{} ({detail})", db.message()),
            None => db.message().to_owned(),
        },
        None => {
            let mut text = e.to_string();
            let mut source = std::error::Error::source(e);
            while let Some(s) = source {
                text.push_str(": ");
                text.push_str(&s.to_string());
                source = s.source();
            }
            text
        }
    }
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn passwords_never_reach_a_message() {
        assert_eq!(
            redact_url("postgres://weir:s3cret@db.example:5432/weir"),
            "postgres://weir:***@db.example:5432/weir"
        );
        assert_eq!(
            redact_url("postgres://weir@db/weir?sslmode=require&password=s3cret"),
            "postgres://weir@db/weir?sslmode=require&password=***"
        );
        assert_eq!(redact_url("postgres://db/weir"), "postgres://db/weir");
        assert_eq!(
            redact_url("host=db user=weir password=s3cret dbname=weir"),
            "host=db user=weir password=*** dbname=weir"
        );
    }
}
