//! One pool of connections per granted database, shared by every worker of a loaded config.
//!
//! Deliberately small: a worker attempt holds one connection for its whole life (its plugins'
//! statements and the host's commit share the session), so the pool only has to hand out an
//! idle connection or make a new one, and take back the ones that come back clean. A
//! connection that comes back inside a transaction, or closed, is dropped instead: closing it
//! makes the server roll back whatever it held.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio_postgres::{Client, Config};
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::grant::PgSpec;
use crate::{PgError, tls};

/// Idle connections kept per grant; more come and go with the workers that need them.
const MAX_IDLE: usize = 8;

/// How long connecting may take before the attempt fails (retryably).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

pub(crate) struct Pool {
    name: String,
    spec: Arc<PgSpec>,
    config: Config,
    tls: MakeRustlsConnect,
    idle: Mutex<Vec<Client>>,
}

impl Pool {
    /// The pool of grant `name`; connects lazily.
    pub(crate) fn new(name: &str, spec: Arc<PgSpec>, mut config: Config) -> Result<Self, String> {
        let (tls, wire) = tls::connector(spec.sslmode, spec.sslrootcert.as_deref())?;
        config.ssl_mode(wire);
        if let Some(password) = &spec.password {
            config.password(password.expose());
        }
        config.application_name("weir");
        config.connect_timeout(CONNECT_TIMEOUT);
        config.keepalives(true);
        config.keepalives_idle(Duration::from_secs(60));
        config.options(session_options(&spec));
        Ok(Self {
            name: name.to_owned(),
            spec,
            config,
            tls,
            idle: Mutex::new(Vec::new()),
        })
    }

    /// An idle connection, or a new one.
    pub(crate) async fn checkout(self: &Arc<Self>) -> Result<PooledClient, PgError> {
        loop {
            let idle = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
            match idle {
                Some(client) if !client.is_closed() => {
                    return Ok(PooledClient {
                        client: Some(client),
                        pool: self.clone(),
                        clean: true,
                    });
                }
                Some(_closed) => continue,
                None => break,
            }
        }
        let (client, connection) =
            self.config
                .connect(self.tls.clone())
                .await
                .map_err(|e| PgError::Connect {
                    grant: self.name.clone(),
                    url: self.spec.url.clone(),
                    reason: crate::explain(&e),
                })?;
        let grant = self.name.clone();
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(database = %grant, "postgres connection ended: {}", crate::explain(&e));
            }
        });
        Ok(PooledClient {
            client: Some(client),
            pool: self.clone(),
            clean: true,
        })
    }

    pub(crate) fn tls(&self) -> MakeRustlsConnect {
        self.tls.clone()
    }
}

/// `-c` settings every session of the grant starts with. A plugin cannot change them: `SET`,
/// `RESET` and `set_config` are refused (see `guard`).
fn session_options(spec: &PgSpec) -> String {
    let mut options = vec![
        // `pg_temp` last: a temporary table can never shadow a table of the granted schema.
        format!("-c search_path={},pg_temp", spec.schema),
        format!(
            "-c statement_timeout={}",
            spec.statement_timeout.map_or(0, |t| t.as_millis())
        ),
        "-c client_min_messages=warning".to_owned(),
        // Dates and times in ISO form, whatever the server's default, for text results.
        "-c DateStyle=ISO,YMD".to_owned(),
        "-c TimeZone=UTC".to_owned(),
    ];
    if spec.read_only {
        options.push("-c default_transaction_read_only=on".to_owned());
    }
    options.join(" ")
}

/// A connection out of the pool; it goes back when dropped, if it is still clean.
pub(crate) struct PooledClient {
    client: Option<Client>,
    pool: Arc<Pool>,
    /// False while a transaction may be open on it.
    pub(crate) clean: bool,
}

impl PooledClient {
    pub(crate) fn client(&self) -> &Client {
        self.client.as_ref().expect("present until dropped")
    }

    pub(crate) fn tls(&self) -> MakeRustlsConnect {
        self.pool.tls()
    }
}

impl Drop for PooledClient {
    fn drop(&mut self) {
        let Some(client) = self.client.take() else {
            return;
        };
        if !self.clean || client.is_closed() {
            return;
        }
        let mut idle = self.pool.idle.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() < MAX_IDLE {
            idle.push(client);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_start_in_the_granted_schema_with_the_grants_limits() {
        let mut spec = PgSpec::new("postgres://weir@h/db");
        spec.schema = "ledger".into();
        spec.statement_timeout = Some(Duration::from_secs(30));
        spec.read_only = true;
        let options = session_options(&spec);
        assert!(
            options.contains("-c search_path=ledger,pg_temp"),
            "{options}"
        );
        assert!(options.contains("-c statement_timeout=30000"), "{options}");
        assert!(
            options.contains("-c default_transaction_read_only=on"),
            "{options}"
        );
    }
}
